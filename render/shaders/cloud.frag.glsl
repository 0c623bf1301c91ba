// The terrain cloud's points: square, or soft and round (render.look.style points).
uniform float u_round;
uniform float u_transparent;
varying vec4 v_color;
varying float v_size;
void main() {
    if (u_round > 0.5) {
        vec2 q = gl_PointCoord * 2.0 - 1.0;
        float r = dot(q, q);
        if (r > 1.0 && v_size > 2.5) discard;
        // a soft round point: full in the middle, falling off to the rim (points of two pixels or
        // less are one pixel block, drawn full)
        float soft = clamp((v_size - 2.0) / 3.0, 0.0, 1.0);
        float k = mix(1.0, 1.0 - smoothstep(0.15, 1.0, r), soft);
        gl_FragColor = u_transparent > 0.5 ? v_color * k : vec4(v_color.rgb * k, v_color.a);
    } else {
        gl_FragColor = v_color;
    }
}
