// The page's only script. It builds every node with textContent / createTextNode:
// document text is never parsed as HTML, so a document cannot inject markup.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("ask-form");
  const input = $("question");
  const kSelect = $("k");
  const retrieverSelect = $("retriever");
  const lowBox = $("low");
  const scopeSelect = $("scope");
  const askButton = $("ask");
  const statusBox = $("status");
  const errorBox = $("error");
  const results = $("results");
  const abstain = $("abstain");
  const list = $("passages");
  const docView = $("document");
  const docTitle = $("doc-title");
  const docMeta = $("doc-meta");
  const docText = $("doc-text");
  const docLink = $("doc-link");
  const backButton = $("back");

  let lastKey = null; // the query whose answer is on screen
  let pushed = false; // whether Back can return to the results with history.back()

  // Offsets from the server count code points (Python); JS strings count UTF-16 units.
  function cpSlice(chars, start, end) {
    return chars.slice(start, end).join("");
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setStatus(text) {
    statusBox.textContent = text;
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function setBusy(busy) {
    askButton.disabled = busy;
    form.setAttribute("aria-busy", busy ? "true" : "false");
    document.body.classList.toggle("busy", busy);
  }

  async function errorMessage(response) {
    if (response.status === 503) {
      return "The index is still loading. Try again in a few seconds.";
    }
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) {
      /* not JSON */
    }
    return "The server answered " + response.status + ".";
  }

  // -- asking -------------------------------------------------------------------

  function queryFromForm() {
    return {
      question: input.value,
      k: Number(kSelect.value),
      retriever: retrieverSelect.value,
      include_low_confidence: lowBox.checked,
      ...(scopeSelect.value ? { documents: [scopeSelect.value] } : {}),
    };
  }

  // The scope picker lists the collection's documents; a scope from the URL waits for them.
  let wantedScope = "";
  async function loadDocuments() {
    try {
      const response = await fetch("/documents", { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const body = await response.json();
      for (const doc of body.documents) {
        const option = el("option", null, doc.title || doc.id);
        option.value = doc.id;
        scopeSelect.append(option);
      }
      if (wantedScope) scopeSelect.value = wantedScope;
    } catch (_) {
      // Without the list the picker offers "All documents" only; asking still works.
    }
  }

  function setScope(docId) {
    wantedScope = docId || "";
    scopeSelect.value = wantedScope;
  }

  function queryParams(query) {
    const params = new URLSearchParams();
    params.set("q", query.question);
    params.set("k", String(query.k));
    params.set("retriever", query.retriever);
    if (query.include_low_confidence) params.set("low", "1");
    if (query.documents) params.set("in", query.documents[0]);
    return params;
  }

  async function ask(query) {
    showDocumentView(false);
    showError("");
    if (!query.question.trim()) {
      showError("Type a question first.");
      input.focus();
      return;
    }
    const key = queryParams(query).toString();
    if (key === lastKey && list.childElementCount + (abstain.hidden ? 0 : 1) > 0) {
      results.hidden = false; // coming back from a document: keep the answer on screen
      return;
    }
    setBusy(true);
    setStatus("Searching…");
    results.hidden = true;
    try {
      const response = await fetch("/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(query),
      });
      if (!response.ok) {
        setStatus("");
        showError(await errorMessage(response));
        return;
      }
      const answer = await response.json();
      lastKey = key;
      renderAnswer(answer);
    } catch (_) {
      setStatus("");
      showError("Cannot reach the server. Is `qa serve` running?");
    } finally {
      setBusy(false);
    }
  }

  function renderAnswer(answer) {
    list.replaceChildren();
    abstain.hidden = answer.answered;
    const count = answer.passages.length;
    if (answer.answered) {
      setStatus(count + (count === 1 ? " passage" : " passages") + " in " + Math.round(answer.took_ms) + " ms.");
    } else {
      setStatus(count ? "No confident answer; showing weak matches." : "No answer found.");
    }
    for (const passage of answer.passages) list.append(renderPassage(passage, answer.answered));
    results.hidden = false;
  }

  function renderPassage(p, confident) {
    const item = el("li", confident ? "passage" : "passage weak");
    const article = el("article");
    const head = el("header", "passage-head");
    head.append(el("span", "rank", "#" + p.rank));
    head.append(el("span", "score", "score " + p.score.toFixed(4)));
    const cite = el("cite", "citation", p.citation.label);
    head.append(cite);
    head.append(
      el("span", "lines", "lines " + p.citation.lines[0] + "–" + p.citation.lines[1])
    );
    article.append(head);

    const body = el("p", "passage-text");
    const chars = Array.from(p.text);
    const qs = p.quote.start - p.citation.start;
    const qe = p.quote.end - p.citation.start;
    if (qs >= 0 && qe <= chars.length && cpSlice(chars, qs, qe) === p.quote.text) {
      body.append(document.createTextNode(cpSlice(chars, 0, qs)));
      body.append(el("mark", "quote", p.quote.text));
      body.append(document.createTextNode(cpSlice(chars, qe, chars.length)));
    } else {
      body.textContent = p.text;
    }
    article.append(body);

    const actions = el("div", "passage-actions");
    const button = el("button", "context", "Show in context");
    button.type = "button";
    // The accessible name starts with the visible text (WCAG "label in name").
    button.setAttribute("aria-label", "Show in context: passage " + p.rank + ", " + p.citation.label);
    button.addEventListener("click", () => {
      const params = new URLSearchParams(location.search);
      params.set("doc", p.citation.doc_id);
      params.set("start", String(p.quote.start));
      params.set("end", String(p.quote.end));
      params.set("pstart", String(p.citation.start));
      params.set("pend", String(p.citation.end));
      history.pushState(null, "", "?" + params.toString());
      pushed = true;
      route();
    });
    actions.append(button);
    article.append(actions);
    item.append(article);
    return item;
  }

  // -- the document view ------------------------------------------------------------

  function showDocumentView(show) {
    docView.hidden = !show;
    form.hidden = show;
    if (show) results.hidden = true;
  }

  function intParam(params, name) {
    const raw = params.get(name);
    if (raw === null || !/^\d+$/.test(raw)) return null;
    return Number(raw);
  }

  async function openDocument(params) {
    const docId = params.get("doc");
    const start = intParam(params, "start");
    const end = intParam(params, "end");
    showError("");
    showDocumentView(true);
    docTitle.textContent = "Loading…";
    docMeta.textContent = "";
    docText.replaceChildren();
    setStatus("Loading the document…");
    let url = "/documents/" + encodeURIComponent(docId) + "?full=true";
    if (start !== null && end !== null) url += "&start=" + start + "&end=" + end;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) {
        setStatus("");
        docTitle.textContent = "Document unavailable";
        showError(await errorMessage(response));
        return;
      }
      renderDocument(await response.json(), start, end, intParam(params, "pstart"), intParam(params, "pend"));
    } catch (_) {
      setStatus("");
      showError("Cannot reach the server. Is `qa serve` running?");
    }
  }

  function renderDocument(doc, start, end, pstart, pend) {
    docTitle.textContent = doc.title;
    docMeta.textContent =
      doc.path + " · " + doc.length.toLocaleString() + " characters · sha256 " + doc.sha256.slice(0, 12) + "…";
    docLink.href = location.pathname + location.search;
    const chars = Array.from(doc.text);
    docText.replaceChildren();
    if (start === null || end === null || !doc.span) {
      docText.textContent = doc.text;
      setStatus("");
      docTitle.focus();
      return;
    }
    // The passage (if known and around the quote) is tinted; the cited quote is marked.
    const ps = pstart !== null && pstart <= start ? pstart : start;
    const pe = pend !== null && pend >= end && pend <= chars.length ? pend : end;
    docText.append(document.createTextNode(cpSlice(chars, 0, ps)));
    const context = el("span", "context-passage");
    context.append(document.createTextNode(cpSlice(chars, ps, start)));
    const mark = el("mark", "cited", cpSlice(chars, start, end));
    mark.id = "cited";
    mark.tabIndex = -1;
    context.append(mark);
    context.append(document.createTextNode(cpSlice(chars, end, pe)));
    docText.append(context);
    docText.append(document.createTextNode(cpSlice(chars, pe, chars.length)));
    const exact = mark.textContent === doc.span.text;
    setStatus(
      exact
        ? "Cited text: characters " + start + "–" + end + " of this document."
        : "Warning: the cited span does not match the document text."
    );
    mark.scrollIntoView({ block: "center" });
    mark.focus({ preventScroll: true });
  }

  // -- navigation ---------------------------------------------------------------------

  function route() {
    const params = new URLSearchParams(location.search);
    if (params.get("doc")) {
      openDocument(params);
      return;
    }
    showDocumentView(false);
    const q = params.get("q");
    if (q) {
      input.value = q;
      if (params.get("k")) kSelect.value = params.get("k");
      if (params.get("retriever")) retrieverSelect.value = params.get("retriever");
      lowBox.checked = params.get("low") === "1";
      setScope(params.get("in"));
      const query = queryFromForm();
      if (params.get("in")) query.documents = [params.get("in")]; // even before the list loads
      ask(query);
    } else {
      results.hidden = list.childElementCount === 0 && abstain.hidden;
      setStatus("");
    }
    input.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = queryFromForm();
    if (query.question.trim()) {
      const search = "?" + queryParams(query).toString();
      if (search !== location.search) history.pushState(null, "", search);
    }
    lastKey = null; // asking again always asks
    ask(query);
  });

  backButton.addEventListener("click", () => {
    if (pushed) {
      history.back();
      return;
    }
    const params = new URLSearchParams(location.search);
    ["doc", "start", "end", "pstart", "pend"].forEach((name) => params.delete(name));
    const search = params.toString();
    history.pushState(null, "", search ? "?" + search : location.pathname);
    route();
  });

  window.addEventListener("popstate", route);
  loadDocuments();
  route();
})();
