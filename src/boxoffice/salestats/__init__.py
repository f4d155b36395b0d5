"""Per-show, per-second sale counters and latency histograms for the live dashboard.

Processes record outcomes in memory (a dict increment) and one task per process flushes them to
Redis every 250 ms in one pipeline, so the sale pays nothing measurable for the dashboard (nor for
adaptive admission, which steers on the buyers' latency histograms: waiting_room/admission.py). This is
not a second metrics system: Prometheus stays the per-process operations view; these are the few
per-show numbers a promoter watches, kept for the sale and then expired.
"""
