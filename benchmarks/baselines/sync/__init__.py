"""The book's own code as the book ran it: sync redis-py, ``time.sleep``, a process per client.

These are the reference rows of every table (``book-*``): the listings of *Redis in Action*
with the same commands in the same order, the same client clocks and retry intervals, and the
same races. As in the asyncio ports beside this package, two additions change no behaviour:
``key_prefix`` (every benchmark key under ``bench:``) and ``on_try`` (a callback before each
attempt, so a table can count tries). ``tests/test_book_ports.py`` counts the commands each call
sends, so a port can be neither slowed nor sped up unnoticed.
"""
