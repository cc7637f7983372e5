precision mediump float;
uniform sampler2D palette;
uniform float time;
varying vec3 vNormal;
varying vec2 vUv;

// The phosphor tint: change it and publish to see a new release.
const vec3 tint = vec3(0.49, 0.99, 0.66);

void main() {
  float light = 0.35 + 0.65 * max(dot(normalize(vNormal), normalize(vec3(0.4, 0.8, 0.6))), 0.0);
  vec3 base = texture2D(palette, vec2(fract(vUv.x + time * 0.05), vUv.y)).rgb;
  gl_FragColor = vec4(base * tint * light, 1.0);
}
