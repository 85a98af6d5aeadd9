import test from 'ava';
import { describeHolders } from '../../src/fuse/holders.js';

test('describeHolders: one line naming bind mounts (without mountinfo\'s //deleted mark) and processes; undefined for nothing', (t) => {
  t.is(describeHolders({ bindMounts: [], processes: [] }), undefined);
  t.is(
    describeHolders({
      bindMounts: [
        { mountpoint: '/run/netns/a', root: '/ns/net/4026532173//deleted' },
        { mountpoint: '/srv/p', root: '/pid/42' },
      ],
      processes: [{ pid: 7, comm: 'cat', path: '/mnt/h/pid/42' }],
    }),
    'bind mount /run/netns/a (of /ns/net/4026532173); bind mount /srv/p (of /pid/42); pid 7 (cat) has /mnt/h/pid/42',
  );
});
