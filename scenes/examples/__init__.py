"""Example modules for scenes' `entry:` keys (see scenes/README.md, "Your own model and data").

This file makes `examples` a regular package, so `examples.tiny_models:ring_net` in a scene of
scenes/ is found here before any other package of that name."""
