// The terrain cloud (render/gl.py, Renderer.draw_cloud): point size, light, fog and the depth code.
uniform mat4 u_mvp;          // the whole frame's
uniform mat4 u_tile;         // the whole frame's clip space -> this tile's
uniform float u_size;        // pixels; for SIZE_WORLD, pixels at depth 1
uniform float u_mode;        // 0: fixed pixels, 1: pixels grown for near points, 2: world size
uniform float u_ref_depth;
uniform float u_floor;       // SIZE_DEPTH: pixels at depth 1 of the grid's spacing (0: none)
uniform float u_max_size;
uniform vec3 u_bg_top;
uniform vec3 u_bg_bottom;
uniform float u_fog;
uniform vec2 u_fog_range;
uniform float u_transparent; // 1: no background; the frame's alpha is coverage (colours premultiplied)
uniform float u_round;       // 1: soft round points (render.look.style points), 0: square
uniform vec3 u_eye;          // the camera, in landscape units
uniform vec3 u_light;        // towards the light, unit
uniform float u_specular;
uniform float u_shininess;
uniform vec2 u_depth_range;  // view depths written to alpha as 0..1 (opaque frames; depth of field)
attribute vec3 a_position;
attribute vec3 a_color;
attribute float a_grow;      // larger points on steep cells (render.look.steepness)
attribute vec3 a_normal;
attribute float a_fade;      // 0 inside, 1 at the dissolving border (render.look.edge)
varying vec4 v_color;
varying float v_size;
void main() {
    vec4 p = u_mvp * vec4(a_position, 1.0);
    gl_Position = u_tile * p;
    float depth = p.w;
    float f = clamp((depth - u_fog_range.x) / (u_fog_range.y - u_fog_range.x), 0.0, 1.0);
    vec3 col = a_color;
    if (u_specular > 0.0) {
        vec3 v = normalize(u_eye - a_position);
        vec3 h = normalize(u_light + v);
        float lit = step(0.0, dot(a_normal, u_light));
        col += u_specular * lit * pow(max(dot(a_normal, h), 0.0), u_shininess) * vec3(1.0, 0.97, 0.92);
    }
    float near = clamp(u_ref_depth / max(depth, 1e-4), 0.5, 2.5);
    if (u_round > 0.5) {
        col *= clamp(sqrt(near), 0.8, 1.25);          // nearer points a little brighter
    }
    // fog (and the dissolving border) fade a point into the background behind it (the gradient at
    // its height in the frame), or with no background into transparency
    float sy = clamp(p.y / max(p.w, 1e-6) * 0.5 + 0.5, 0.0, 1.0);
    float fade = 1.0 - (1.0 - u_fog * f * f) * (1.0 - a_fade);
    float code = clamp((depth - u_depth_range.x) / max(u_depth_range.y - u_depth_range.x, 1e-6), 0.0, 1.0);
    v_color = u_transparent > 0.5 ? vec4(col * (1.0 - fade), 1.0 - fade)
                                  : vec4(mix(col, mix(u_bg_bottom, u_bg_top, sy), fade), code * 0.996);
    float s = u_size * a_grow;
    if (u_mode > 1.5) {
        s = s / max(depth, 1e-4);
    } else if (u_round > 0.5) {
        // points that read as points: they grow for near points more slowly than the gaps
        // between grid neighbours do, so a close-up shows single points, a far view a surface
        s = s * near;
    } else if (u_mode > 0.5) {
        // grown for near points, and never smaller than the gap to the grid neighbours there,
        // so a close-up reads as a surface, not as rows of dots with the sky between them
        s = max(s * clamp(u_ref_depth / max(depth, 1e-4), 0.75, 3.0), u_floor * a_grow / max(depth, 1e-4));
    }
    s *= 1.0 - 0.6 * a_fade;                      // thinning towards the border
    gl_PointSize = min(s, u_max_size);
    v_size = gl_PointSize;
}
