import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { Role } from '../../src/auth/tokens.js';
import type { StrataNode } from '../../src/node.js';
import { auth } from './temp-node.js';

/** Anything with the node's HTTP app, to call app.inject() on. */
type Injectable = Pick<StrataNode, 'app'>;
type Headers = Record<string, string>;

/** Asserts a Strata error answer: the status, the stable code, and a message that says something. */
export function expectError(response: LightMyRequestResponse, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.json()).toMatchObject({ error: { code, message: expect.any(String) } });
}

/** POSTs `body` as JSON; a string or Buffer is sent as it is, so that malformed JSON can be sent too. */
export async function postJson(
  node: Injectable,
  url: string,
  body: unknown,
  headers: Headers = auth,
): Promise<LightMyRequestResponse> {
  return node.app.inject({
    method: 'POST',
    url,
    headers: { ...headers, 'content-type': 'application/json' },
    payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
}

/** Asserts that POST `url` refuses `payload` with 415 when it is declared as anything but JSON. */
export async function expectJsonOnly(node: Injectable, url: string, payload: string): Promise<void> {
  for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream']) {
    const response = await node.app.inject({
      method: 'POST',
      url,
      headers: { ...auth, 'content-type': contentType },
      payload,
    });
    expectError(response, 415, 'STRATA_UNSUPPORTED_MEDIA_TYPE');
  }
}

/** The Authorization header that presents `token`. */
export function bearer(token: string): Headers {
  return { authorization: `Bearer ${token}` };
}

/** Creates a token of `role` with the admin token, asserting that it was created. */
export async function createToken(
  node: Injectable,
  role: Role,
  name = `${role} token`,
): Promise<{ id: string; token: string }> {
  const response = await node.app.inject({
    method: 'POST',
    url: '/v1/tokens',
    headers: auth,
    payload: { role, name },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json() as { id: string; token: string };
}

/** The Authorization header of a new token of `role`. */
export async function tokenHeaders(node: Injectable, role: Role, name?: string): Promise<Headers> {
  return bearer((await createToken(node, role, name)).token);
}

/** Makes `bucket` readable without a token (or, with false, no longer), asserting that the setting was stored. */
export async function makePublic(node: Injectable, bucket: string, publicRead = true): Promise<void> {
  const response = await node.app.inject({
    method: 'PUT',
    url: `/v1/buckets/${bucket}/settings`,
    headers: { ...auth, 'content-type': 'application/json' },
    payload: JSON.stringify({ publicRead }),
  });
  expect(response.statusCode, response.body).toBe(200);
}
