"""What both stages share: the scene file and the cache format. Imports neither torch nor vispy."""
