"""Task families: seeded generators of long-context episodes, the bAbI-format reader, haystacks and scoring.

Map: `episode` (records, length measure), `vocab` (word lists), `filler` + `haystack` (background and assembly),
`world` (people and objects, shared by qa2/qa3), `qa1` `qa2` `qa3` `vt` `kv` (one generator each), `registry`
(family name -> generator), `events` (fact and question parser), `babi` (file reader), `scoring` (exact match).
Pure Python: nothing here imports torch, the model, the engine or the trainer.
Run `python -m atommem.tasks.registry qa2 1k 0` to see an episode.
"""
