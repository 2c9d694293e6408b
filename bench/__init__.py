"""Benchmarks of newstag against its peers (fastText, a plain scikit-learn baseline, a gazetteer baseline).

``python -m bench.run`` (``make bench``; ``make bench-quick`` for the reduced run) writes ``bench/results.md``,
``bench/results.json`` and the plots under ``bench/``; scratch files go to ``bench/out/`` (git-ignored).
Every system is trained and measured in its own child process (``bench.worker``) so its peak RSS is its own.
"""
