// The background gradient (render/gl.py, Renderer.begin): one quad at the farthest depth.
uniform vec2 u_yrange;       // the tile's bottom and top as fractions of the whole frame's height
attribute vec2 a_position;
varying float v_y;
void main() {
    gl_Position = vec4(a_position, 0.999, 1.0);
    v_y = mix(u_yrange.x, u_yrange.y, a_position.y * 0.5 + 0.5);
}
