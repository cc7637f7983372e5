import { SingleBar } from 'cli-progress';
import { keyOf, type PublishReporter, type PublishSummary, type SourceFile } from '../release/publish.js';

/** A progress bar on a terminal, one plain line per upload otherwise (logs, CI). */
export function publishReporter(stream: NodeJS.WriteStream = process.stderr): PublishReporter {
  let bar: SingleBar | undefined;
  return {
    start(files, uploadBytes) {
      if (stream.isTTY && uploadBytes > 0) {
        bar = new SingleBar({ stream, format: 'uploading [{bar}] {percentage}% {value}/{total} bytes' });
        bar.start(uploadBytes, 0);
      } else {
        stream.write(`publishing ${files} file(s), ${uploadBytes} bytes to upload\n`);
      }
    },
    uploaded(file: SourceFile) {
      if (bar) bar.increment(file.size);
      else stream.write(`uploaded ${file.bucket}/${keyOf(file)} (${file.size} bytes)\n`);
    },
    done() {
      bar?.stop();
    },
  };
}

export function describeSummary(summary: PublishSummary): string {
  const lines = [
    `${summary.dryRun ? 'dry run: ' : ''}${summary.files} file(s): ${summary.uploaded} ${summary.dryRun ? 'to upload' : 'uploaded'} (${summary.uploadedBytes} bytes), ` +
      `${summary.reused} already stored, ${summary.unchanged} unchanged` +
      (summary.rerouted ? `, ${summary.rerouted} served again from what their keys hold` : ''),
  ];
  const shown = 100;
  for (const change of (summary.changes ?? []).slice(0, shown)) {
    lines.push(
      `  ${(change.upload ? 'upload' : change.newVersion ? 'stored' : 'route').padEnd(6)} ${change.bucket}/${change.key} (${change.size} bytes)`,
    );
  }
  if ((summary.changes?.length ?? 0) > shown)
    lines.push(`  … and ${(summary.changes?.length ?? 0) - shown} more`);
  if (summary.unchangedRelease)
    lines.push(
      `nothing changed: release ${summary.release} stays in effect${summary.dryRun ? ' (no release would be cut)' : ''}`,
    );
  else if (summary.release) lines.push(`release ${summary.release} effective ${summary.effectiveAt}`);
  if (summary.behind) {
    lines.push(
      `warning: it takes effect before the active release ${summary.behind.release} ` +
        `(effective ${summary.behind.effectiveAt}), so it is history, not served now; ` +
        'publish without --effective-at, or roll back to it, to serve it',
    );
  }
  if (summary.unmatchedExcludes) {
    lines.push(
      `warning: exclude rule(s) of strata.publish.json matched nothing: ${summary.unmatchedExcludes
        .map((rule) => JSON.stringify(rule))
        .join(', ')} (a typo publishes what it meant to leave out)`,
    );
  }
  if (summary.skippedSymlinks) {
    const links = summary.skippedSymlinks;
    lines.push(
      `warning: ${links.length} symbolic link(s) left out (links are not followed): ${links.slice(0, 10).join(', ')}${links.length > 10 ? ', …' : ''}`,
    );
  }
  return lines.join('\n');
}
