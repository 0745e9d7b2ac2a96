"""`qa bench`: measure the service against the floor and a naive peer, and scaling by N.

Nothing here is on the query path; the product never imports this package.
"""
