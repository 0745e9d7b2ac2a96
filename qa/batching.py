"""Micro-batching: many concurrent questions, one model call.

The model costs about the same to encode one short question as to encode eight
(the fixed cost of a forward pass dominates), so under concurrency the server
gathers the questions that arrive together and encodes them in one call. The
work runs on one dedicated thread, so batches never compete with each other for
the two cores, and the event loop stays free to accept requests meanwhile.

Waiting is adaptive: a lone question is encoded at once (no added latency for a
single client); only after a batch of more than one, i.e. under load, does the
batcher wait up to ``wait_ms`` for more questions to join the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from qa.cache import AnswerCache, cache_key
from qa.embedding import Vectors
from qa.service import QAService
from qa.types import Answer

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    """Gathers concurrent ``submit`` calls into batches for one handler call.

    Result ``i`` of the handler goes to the caller that submitted input ``i`` of
    that batch, and to no one else; a handler that returns the wrong number of
    results fails the whole batch rather than guess.
    """

    def __init__(
        self,
        handler: Callable[[list[In]], Sequence[Out | BaseException]],
        max_batch: int = 32,
        wait_ms: float = 2.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._handler = handler
        self.max_batch = max_batch
        self.wait_s = max(wait_ms, 0.0) / 1000
        # One queue and collector per event loop: a server has one, but test clients
        # may run several loops (even at once) over the same service.
        self._lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lane[In, Out]] = (
            weakref.WeakKeyDictionary()
        )
        self._executor = ThreadPoolExecutor(1, "qa-batch")  # one batch at a time
        self._last_size = 0
        self.batch_sizes: Counter[int] = Counter()

    async def submit(self, item: In) -> Out:
        """Queue ``item`` and wait for its own result."""
        loop = asyncio.get_running_loop()
        lane = self._lanes.get(loop)
        if lane is None or lane.task.done():
            queue: asyncio.Queue[Pending[In, Out]] = asyncio.Queue()
            task = loop.create_task(self._run(queue), name="qa-micro-batcher")
            lane = self._lanes[loop] = _Lane(queue, task)
        future: asyncio.Future[Out] = loop.create_future()
        await lane.queue.put((item, future))
        return await future

    def _drain(self, queue: asyncio.Queue[Pending[In, Out]], batch: list[Pending[In, Out]]) -> None:
        while len(batch) < self.max_batch and not queue.empty():
            batch.append(queue.get_nowait())

    async def _gather(self, queue: asyncio.Queue[Pending[In, Out]]) -> list[Pending[In, Out]]:
        batch = [await queue.get()]
        self._drain(queue, batch)
        if self.wait_s > 0 and self._last_size > 1:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.wait_s
            while len(batch) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
                self._drain(queue, batch)
        return [(item, future) for item, future in batch if not future.done()]

    async def _run(self, queue: asyncio.Queue[Pending[In, Out]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather(queue)
            if not batch:
                continue
            self._last_size = len(batch)
            self.batch_sizes[len(batch)] += 1
            inputs = [item for item, _ in batch]
            try:
                results = await loop.run_in_executor(self._executor, self._handler, inputs)
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"batch handler returned {len(results)} results for {len(batch)} inputs"
                    )
            except Exception as exc:
                log.exception("micro-batch of %d failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # the caller went away (timeout, disconnect)
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def close(self) -> None:
        """Stop the collector of the running loop; others are cancelled from their own loop."""
        loop = asyncio.get_running_loop()
        for owner, lane in list(self._lanes.items()):
            if owner is loop:
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task
                while not lane.queue.empty():
                    lane.queue.get_nowait()[1].cancel()
            elif not owner.is_closed():
                owner.call_soon_threadsafe(lane.task.cancel)
        self._lanes.clear()


Pending = tuple[In, "asyncio.Future[Out]"]


@dataclass(frozen=True, slots=True)
class _Lane(Generic[In, Out]):
    queue: asyncio.Queue[Pending[In, Out]]
    task: asyncio.Task[None]


@dataclass(frozen=True, slots=True)
class _Query:
    """One validated question and how to search for it."""

    question: str  # as asked: the answer echoes it
    cleaned: str  # what the model and BM25 see
    k: int
    retriever: str
    include_low_confidence: bool
    documents: tuple[str, ...] | None = None  # a scoped question's sorted document ids


class FastAsk:
    """The query path for the HTTP server: cache, then micro-batched encoding, then search.

    ``ask`` returns exactly what ``QAService.ask`` would; only the route differs.
    Encoding (one batch at a time, on the batcher's thread) and searching (a small
    pool, one thread per core) overlap: while one batch's answers are assembled,
    the next batch is already being encoded. The batcher's thread hands each
    question straight to the search pool, without a round trip through the event
    loop, and a lone question (a single client) is searched right there, since
    there is no next batch to overlap with.
    """

    def __init__(
        self,
        service: QAService,
        cache: AnswerCache | None = None,
        max_batch: int | None = None,
        wait_ms: float | None = None,
    ) -> None:
        settings = service.settings
        self.service = service
        self.cache = cache if cache is not None else AnswerCache(settings.cache_size)
        self.batcher: MicroBatcher[_Query, Future[Answer]] = MicroBatcher(
            self._answer_batch,
            max_batch=settings.max_batch if max_batch is None else max_batch,
            wait_ms=settings.batch_wait_ms if wait_ms is None else wait_ms,
        )
        self._search = ThreadPoolExecutor(os.cpu_count() or 2, "qa-search")

    async def ask(
        self,
        question: str,
        k: int | None = None,
        retriever: str | None = None,
        include_low_confidence: bool = False,
        documents: Sequence[str] | None = None,
    ) -> Answer:
        service = self.service
        k = service.settings.default_k if k is None else k
        name = retriever or service.options.retriever
        cleaned = service.validate(question, k, name)  # bad input fails before queueing
        scope = service.scope(documents)
        doc_ids = scope.doc_ids if scope is not None else None
        key = cache_key(cleaned, k, name, include_low_confidence, doc_ids or ())
        snapshot = service.snapshot
        cached = self.cache.get(snapshot, key)
        if cached is not None:
            return dataclasses.replace(cached, question=question)
        query = _Query(question, cleaned, k, name, include_low_confidence, doc_ids)
        pending = await self.batcher.submit(query)
        # A lone question comes back already answered: skip the event-loop round trip.
        answer = pending.result() if pending.done() else await asyncio.wrap_future(pending)
        if service.snapshot is snapshot:  # not swapped meanwhile
            self.cache.put(snapshot, key, answer)
        return answer

    def _answer_batch(self, queries: list[_Query]) -> list[Future[Answer] | BaseException]:
        """Encode the batch in one model call, then start each question's search."""
        vectors = self._encode_batch([query.cleaned for query in queries])
        pending: list[Future[Answer] | BaseException] = []
        for query, vector in zip(queries, vectors, strict=True):
            if isinstance(vector, BaseException):
                pending.append(vector)
            elif len(queries) == 1:
                pending.append(_settled(self._search_one, query, vector))
            else:
                pending.append(self._search.submit(self._search_one, query, vector))
        return pending

    def _search_one(self, query: _Query, vector: Vectors) -> Answer:
        return self.service.ask(
            query.question,
            query.k,
            query.retriever,
            query.include_low_confidence,
            question_vector=vector,
            documents=query.documents,
        )

    def _encode_batch(self, questions: list[str]) -> list[Vectors | BaseException]:
        """One model call for the whole batch; row ``i`` belongs to question ``i``.

        If that call fails, each question is retried alone: one input the model
        cannot take fails its own request, not every request that shared its batch.
        """
        embedder = self.service.embedder
        try:
            vectors = embedder.encode(questions, batch_size=max(len(questions), 1))
        except Exception:
            if len(questions) == 1:
                raise
            log.warning("a batch of %d failed; encoding its questions one by one", len(questions))
            return [self._encode_alone(question) for question in questions]
        return list(vectors)

    def _encode_alone(self, question: str) -> Vectors | BaseException:
        try:
            vector: Vectors = self.service.embedder.encode([question], batch_size=1)[0]
        except Exception as exc:
            return exc
        return vector

    async def close(self) -> None:
        await self.batcher.close()
        self._search.shutdown(wait=False)


def _settled(work: Callable[..., Answer], *args: object) -> Future[Answer]:
    """``work(*args)`` run here and now, as an already-finished future."""
    future: Future[Answer] = Future()
    try:
        future.set_result(work(*args))
    except Exception as exc:
        future.set_exception(exc)
    return future
