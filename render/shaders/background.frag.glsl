// The background gradient's colour at the fragment's height in the whole frame.
uniform vec3 u_top;
uniform vec3 u_bottom;
varying float v_y;
void main() { gl_FragColor = vec4(mix(u_bottom, u_top, v_y), 1.0); }   // alpha 1: the farthest depth
