"""FIX 4.4: the order-entry gateway (``oms fixgw``) and its session engine.

The session layer is upstream QuickFIX (the ``quickfix`` package) behind the thin interface in
``fixgw/engine.py``; each engine runs in a process of its own (QuickFIX's callbacks run on its
own threads, and an initiator and an acceptor stopped in one process can crash it).
"""
