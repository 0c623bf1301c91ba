// Sprites (trails, heads, marks; render/gl.py, Renderer.draw_sprites), a little towards the camera.
uniform mat4 u_mvp;
uniform mat4 u_tile;
uniform float u_max_size;
uniform float u_scale;
uniform float u_depth_bias;
attribute vec3 a_position;
attribute vec4 a_color;
attribute float a_size;
varying vec4 v_color;
void main() {
    gl_Position = u_tile * (u_mvp * vec4(a_position, 1.0));
    // drawn a little towards the camera, so marks on the surface are not hidden by its points
    gl_Position.z -= u_depth_bias * gl_Position.w;
    gl_PointSize = min(a_size * u_scale, u_max_size);
    v_color = a_color;
}
