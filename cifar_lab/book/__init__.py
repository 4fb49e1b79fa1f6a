"""The book layer: turns runs into pages.

Records with their provenance, statistics over seeds, published claims and their verdicts, the scales and
chapters of `cifar-lab reproduce`, editions, the notebook runner and sweeps, and the chapters' own experiments,
tables, diagrams and teaching code. It sits on the library (`cifar_lab.data`, `models`, `engine`, `sparse`,
`distributed`, `inference`, `export`, `bench`, ...), which never imports it.
"""
