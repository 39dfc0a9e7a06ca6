"""The TDS (Tabular Data Stream) side of the stand-in: MS-TDS 7.4 as the three client stacks use it.

Modules, bottom up: ``wire`` (primitive types), ``packets`` (framing), ``prelogin``, ``login7``,
``datatypes`` (TYPE_INFO and values), ``requests`` (SQL batch, RPC, transaction manager),
``tokens`` (response tokens), ``response`` (engine events -> tokens), ``procedures``
(sp_executesql/sp_prepare family), ``connection`` (one client). PROTOCOL.md says what is
implemented, what each driver sends, and what is not implemented.
"""
