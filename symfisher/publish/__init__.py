"""Publication: the catalog document, the README table, verification records, reports.

The top layer below the command line: it reads derivations (:mod:`symfisher.derive`),
kernel texts (:mod:`symfisher.codegen`) and verdicts (:mod:`symfisher.verify`)
and writes what people read.
"""
