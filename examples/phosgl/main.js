// phosgl: every asset is fetched with a relative URL. Strata pins this document to its release
// (a <base href="/apps/phosgl/@<release>/">), so all of them come from the same release.
import { Strata } from '/strata-client.js';
import { startNotes } from './notes.js';

const state = { ready: false, renderer: 'none', release: null, shaders: {}, frames: 0, error: null };
window.phosgl = state;

async function text(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

function parseObj(source) {
  const positions = [];
  const uvs = [];
  const vertices = [];
  for (const line of source.split('\n')) {
    const [tag, ...rest] = line.trim().split(/\s+/);
    if (tag === 'v') positions.push(rest.map(Number));
    else if (tag === 'vt') uvs.push(rest.map(Number));
    else if (tag === 'f') {
      const corners = rest.map((corner) => corner.split('/').map((n) => Number(n) - 1));
      const [a, b, c] = corners.map(([p]) => positions[p]);
      const edge1 = b.map((value, i) => value - a[i]);
      const edge2 = c.map((value, i) => value - a[i]);
      const normal = [
        edge1[1] * edge2[2] - edge1[2] * edge2[1],
        edge1[2] * edge2[0] - edge1[0] * edge2[2],
        edge1[0] * edge2[1] - edge1[1] * edge2[0],
      ];
      for (const [p, t] of corners) vertices.push(...positions[p], ...normal, ...(uvs[t] ?? [0, 0]));
    }
  }
  return new Float32Array(vertices);
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`${url}: cannot load image`));
    image.src = url;
  });
}

function perspective(fov, aspect, near, far) {
  const f = 1 / Math.tan(fov / 2);
  return new Float32Array([
    f / aspect,
    0,
    0,
    0,
    0,
    f,
    0,
    0,
    0,
    0,
    (far + near) / (near - far),
    -1,
    0,
    0,
    (2 * far * near) / (near - far),
    0,
  ]);
}

function rotation(t) {
  const [cy, sy, cx, sx] = [Math.cos(t), Math.sin(t), Math.cos(t * 0.7), Math.sin(t * 0.7)];
  // rotateY(t) · rotateX(0.7 t), then pushed back along -z.
  return new Float32Array([cy, sx * sy, -cx * sy, 0, 0, cx, sx, 0, sy, -sx * cy, cx * cy, 0, 0, 0, -3.2, 1]);
}

function compile(gl, type, source) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
  return shader;
}

function renderWebGL(canvas, gl, { vertexSource, fragmentSource, mesh, image }) {
  const program = gl.createProgram();
  gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, vertexSource));
  gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, fragmentSource));
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
  gl.useProgram(program);
  gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
  gl.bufferData(gl.ARRAY_BUFFER, mesh, gl.STATIC_DRAW);
  const stride = 8 * 4;
  for (const [name, size, offset] of [
    ['position', 3, 0],
    ['normal', 3, 12],
    ['uv', 2, 24],
  ]) {
    const location = gl.getAttribLocation(program, name);
    gl.enableVertexAttribArray(location);
    gl.vertexAttribPointer(location, size, gl.FLOAT, false, stride, offset);
  }
  gl.bindTexture(gl.TEXTURE_2D, gl.createTexture());
  gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, image);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
  gl.uniformMatrix4fv(
    gl.getUniformLocation(program, 'projection'),
    false,
    perspective(0.9, canvas.width / canvas.height, 0.1, 20),
  );
  gl.enable(gl.DEPTH_TEST);
  const model = gl.getUniformLocation(program, 'model');
  const time = gl.getUniformLocation(program, 'time');
  const frame = (now) => {
    const t = now / 1000;
    gl.clearColor(0.02, 0.03, 0.05, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.uniformMatrix4fv(model, false, rotation(t));
    gl.uniform1f(time, t);
    gl.drawArrays(gl.TRIANGLES, 0, mesh.length / 8);
    state.frames += 1;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

/** Without WebGL: the same model, flat-shaded with the shader's tint on a 2D canvas. */
function renderCanvas(canvas, { fragmentSource, mesh }) {
  const context = canvas.getContext('2d');
  const tint = /vec3 tint = vec3\(([^)]*)\)/.exec(fragmentSource)?.[1].split(',').map(Number) ?? [1, 1, 1];
  const frame = (now) => {
    const m = rotation(now / 1000);
    context.fillStyle = '#05070b';
    context.fillRect(0, 0, canvas.width, canvas.height);
    for (let i = 0; i < mesh.length; i += 24) {
      const points = [0, 8, 16].map((o) => {
        const [x, y, z] = [mesh[i + o], mesh[i + o + 1], mesh[i + o + 2]];
        const X = m[0] * x + m[4] * y + m[8] * z;
        const Y = m[1] * x + m[5] * y + m[9] * z;
        const Z = m[2] * x + m[6] * y + m[10] * z + m[14];
        return [canvas.width / 2 + (X / -Z) * canvas.height, canvas.height / 2 - (Y / -Z) * canvas.height];
      });
      const light = 0.4 + 0.6 * Math.abs(mesh[i + 4]);
      context.fillStyle = `rgb(${tint.map((c) => Math.round(255 * c * light)).join(',')})`;
      context.beginPath();
      context.moveTo(...points[0]);
      context.lineTo(...points[1]);
      context.lineTo(...points[2]);
      context.fill();
    }
    state.frames += 1;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

async function main() {
  const strata = new Strata({ token: new URLSearchParams(location.hash.slice(1)).get('token') ?? undefined });
  const table = await strata.routes();
  state.release = table.release;
  document.getElementById('release').textContent = table.release.slice(0, 12);
  const [vertexSource, fragmentSource, model, image] = await Promise.all([
    text('shaders/scene.vert'),
    text('shaders/scene.frag'),
    text('models/phosphor.obj'),
    loadImage('images/palette.png'),
  ]);
  state.shaders = { vertex: vertexSource, fragment: fragmentSource };
  const mesh = parseObj(model);
  const canvas = document.getElementById('scene');
  const gl = canvas.getContext('webgl', { preserveDrawingBuffer: true });
  if (gl) {
    renderWebGL(canvas, gl, { vertexSource, fragmentSource, mesh, image });
    state.renderer = 'webgl';
  } else {
    renderCanvas(canvas, { fragmentSource, mesh });
    state.renderer = 'canvas';
  }
  document.getElementById('renderer').textContent = state.renderer;
  const chime = new Audio('sounds/chime.wav');
  canvas.addEventListener('click', () => chime.play().catch(() => {}));
  startNotes(strata);
  state.ready = true;
}

main().catch((error) => {
  state.error = String(error);
  document.getElementById('renderer').textContent = `error: ${error.message}`;
});
