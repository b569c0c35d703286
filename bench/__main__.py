"""``python -m bench`` (``make bench``): the whole benchmark (``bench/run.py``)."""

from bench.run import main

main()
