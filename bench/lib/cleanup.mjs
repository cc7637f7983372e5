/**
 * Steps to undo (stop servers, remove temp dirs), run in reverse order on success, error or
 * SIGINT/SIGTERM; each runs at most once. `interrupted` tells a benchmark that the errors of steps
 * cut short by a signal are expected.
 */
export function cleanupStack(log, what) {
  const steps = [];
  const stack = {
    interrupted: false,
    push: (step) => steps.push(step),
    run: () => runSteps(steps, log),
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      stack.interrupted = true;
      log(`${signal}: ${what}`);
      void stack.run().then(() => process.exit(130));
    });
  }
  return stack;
}

/** Runs and removes `steps` last first; a step that fails is logged and the rest still run. */
export async function runSteps(steps, log) {
  while (steps.length > 0) {
    const step = steps.pop();
    try {
      await step();
    } catch (error) {
      log(`cleanup: ${error.message}`);
    }
  }
}
