"""The render stage: a cached landscape drawn as a film (vispy/OpenGL offscreen, NumPy, Pillow).

From the shell: ``python -m render SCENE`` (render/__main__.py; the usage is there).  Nothing is
imported here, so ``import render`` loads neither vispy nor the GL.

A frame, from the cache to a file:

    look.py           cache arrays -> the terrain's points and colours, and trails on the surface
    terrain_style.py  what render.look adds to the terrain: light, valley occlusion, the frayed
                      edge, contour and wireframe lines, steep points, upsampling (``Finish``)
    camera/           the camera's state at t: timeline, shots, ground, matrices, the automatic
                      camera (its ``__init__`` is the map)
    gl.py             offscreen EGL context, the cloud, sprite and background programs, tiles
    shaders/          the GLSL sources gl.py builds its programs from (``NAME.vert.glsl``,
                      ``NAME.frag.glsl``)
    marks.py          the networks a ``minima`` plane goes through: ring, stem and label each
    post.py           post passes on the whole frame: depth of field, then bloom
    overlay.py        title card, captions, read-out, legend, the landscape's description
    film.py           ``Film``: joins all of the above; ``draw(t)`` (the GL) then ``finish`` (post
                      passes, labels, overlays)
    options.py        ``Options``: a film's size, rate, duration, stride, supersampling
    frames.py         frames to files: box downsampling, straight alpha, the seamless loop,
                      ``write_film`` (finishing on a second thread), ``write_still``
    writer.py         the encoder (ffmpeg: MP4, ProRes, VP9, GIF), PNG sequences, single images
    easing.py         the easing curves the camera, trails, loop and overlays share

Around the film:

    compare.py        several films in one grid of panels, page after page (comparisons, sweeps)
    sweep.py          a sweep's contact sheet, figures table and chart
    storyboard.py     a contact sheet of stills at even times
    report.py         a landscape's report: heat map, basins, convexity, figures
    viewer.py         a window to find shots by eye (``--view``)
    bench.py          the render bench (``python -m render.bench``)
    __main__.py       the command line

Never torch (tests/test_separation.py): the render stage reads the cache and computes nothing.
"""
