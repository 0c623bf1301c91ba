"""What every stage shares: the scene file and the cache format.  Imports neither torch nor vispy
(tests/test_separation.py holds it to numpy, pyyaml and pydantic).

    scene/          the scene file: schema, validation, errors, cache keys (its __init__ maps it)
    cache.py        a landscape cache entry: the format (its docstring is the contract), reader, writer
    cachefiles.py   what cache.py and store.py share: FORMAT_VERSION, CacheError, array checks, lock
    store.py        the trained-model store, cache/models/<train_key>/
    fingerprint.py  what a cache key covers beyond the scene's text: weight files, the user's code
    figures.py      a landscape's figures (compute/morphology) in words
    scale.py        loss to height and colour, shared by the film and the export
    atomic.py       files and folders that appear only when complete
    cli.py          the command lines' scene arguments, UserError and its exit codes, Ctrl-C
    assets.py       colormaps and fonts under assets/, and colormap files a scene names
    benchfile.py    the benchmark rows (out/bench.json) and the README's tables
"""
