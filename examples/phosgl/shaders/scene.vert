attribute vec3 position;
attribute vec3 normal;
attribute vec2 uv;
uniform mat4 projection;
uniform mat4 model;
varying vec3 vNormal;
varying vec2 vUv;

void main() {
  vNormal = mat3(model) * normal;
  vUv = uv;
  gl_Position = projection * model * vec4(position, 1.0);
}
