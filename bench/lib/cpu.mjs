import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond;
function clockTicks() {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100; // USER_HZ on every Linux architecture Node supports.
    }
  }
  return ticksPerSecond;
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc/PID/stat (proc(5): fields 14
 * and 15, after the parenthesised command name). Undefined where /proc is not available.
 */
export function processCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state), so field 14 (utime) is fields[11] and 15 (stime) is fields[12].
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return undefined;
  }
}

/** CPU seconds this benchmark process (the load generator) has used so far. */
export function ownCpuSeconds() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/**
 * The machine's CPU time so far, from the first line of /proc/stat (proc(5)), in clock ticks:
 * `steal` is time the hypervisor ran something else while this VM wanted a CPU. Undefined where
 * /proc is not available.
 */
export function machineCpuTicks() {
  try {
    const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
    const ticks = values.map(Number);
    return { total: ticks.slice(0, 8).reduce((sum, value) => sum + value, 0), steal: ticks[7] ?? 0 };
  } catch {
    return undefined;
  }
}

/** The share of the machine's CPU time the host stole between two machineCpuTicks() readings, in %. */
export function stealPercent(before, after) {
  if (!before || !after || after.total <= before.total) return undefined;
  return ((after.steal - before.steal) * 100) / (after.total - before.total);
}
