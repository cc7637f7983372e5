// The notes panel: documents written straight from the browser with strata-client.js.
const bucket = 'notes';

export function startNotes(strata) {
  const form = document.getElementById('note-form');
  const input = document.getElementById('note-text');
  const status = document.getElementById('note-status');
  const list = document.getElementById('note-list');

  async function refresh() {
    if (!strata.token) {
      status.textContent = 'read-only: add #token=<write token> to the URL to write notes';
      return;
    }
    try {
      const { keys } = await strata.list(bucket, { limit: 20 });
      const notes = await Promise.all(
        keys.map(async ({ key }) => ({ key, note: await (await strata.get(bucket, key)).json() })),
      );
      list.replaceChildren(
        ...notes
          .sort((a, b) => (a.note.at < b.note.at ? 1 : -1))
          .map(({ note }) => {
            const item = document.createElement('li');
            item.textContent = `${new Date(note.at).toLocaleString()}: ${note.text}`;
            return item;
          }),
      );
    } catch (error) {
      status.textContent = `cannot list notes: ${error.code ?? error.message}`;
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = `${new Date().toISOString()}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      const { version } = await strata.put(
        bucket,
        key,
        { text: input.value, at: new Date().toISOString() },
        { ifNoneMatch: true },
      );
      status.textContent = `saved as version ${version.slice(0, 12)}…`;
      input.value = '';
      await refresh();
    } catch (error) {
      status.textContent = `not saved: ${error.code ?? error.message}`;
    }
  });

  return refresh();
}
