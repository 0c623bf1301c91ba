// A sprite: a hard disc or a soft glow (u_soft mixes them).
uniform float u_soft;
varying vec4 v_color;
void main() {
    vec2 p = gl_PointCoord * 2.0 - 1.0;
    float r = dot(p, p);
    if (r > 1.0) discard;
    float hard = 1.0 - smoothstep(0.65, 1.0, r);
    float glow = exp(-4.0 * r);
    gl_FragColor = vec4(v_color.rgb, v_color.a * mix(hard, glow, u_soft));
}
