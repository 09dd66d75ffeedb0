"""Ingest: everything between a venue and the files the warehouse is loaded from. HTTP only, no DuckDB.

* ``endpoints``: what an adapter declares about requests (``Endpoint``, envelope errors, ``FetchResult``), cheap
  to import; ``limits``: documented rate limits and the limiter; ``http``: the shared venue client (retries,
  envelopes, redaction, landing);
* ``raw``: landing every response verbatim (``raw/venue=.../endpoint=.../date=...``), reading it back;
* ``manifests``: the typed record of one extract (``Manifest``, ``RequestRecord``) and where manifests live;
* ``extract``: the runner of one venue's snapshot plan for one interval (adapters come from the registry);
* ``bulk``: the bulk history fill's window, paging and resumable fetch (``positioning.backfill`` runs the
  fill, ``warehouse.bulk_load`` loads it);
* ``compact``: raw-file compaction into Parquet archives and their retention.
"""
