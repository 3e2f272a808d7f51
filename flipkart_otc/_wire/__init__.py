"""Bytes from Flipkart in, models or exceptions out: pure, no I/O, no clock.

``common`` is what every endpoint shares (JSON, error answers, ``Retry-After``,
secrets kept out of exceptions); ``kinds`` the kinds of value answers hold; one
module per endpoint holds its request body, its fields and its parser.
"""
