import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';

/** Asserts a Strata error answer: the status, the stable code, and a message that says something. */
export function expectError(response: LightMyRequestResponse, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.json()).toMatchObject({ error: { code, message: expect.any(String) } });
}
