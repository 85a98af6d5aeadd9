/** `handlefs ls [MNT] [--json]`: one line per handle the service holds, as lsns and ps list theirs. */
import { formatHandles, type HandleRow } from '../service/handles.js';
import { askService, onlyMount } from './ask.js';
import { EXIT } from './exit-codes.js';

export async function listCommand(mountpoint: string | undefined, json: boolean): Promise<number> {
  const rows = await askService<HandleRow[]>(mountpoint ?? onlyMount('ls'), { op: 'handles' });
  process.stdout.write(json ? `${JSON.stringify(rows)}\n` : `${formatHandles(rows)}\n`);
  return EXIT.ok;
}
