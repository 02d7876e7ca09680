/**
 * Releases and channels: a channel's latest release is what its agents should run. Release
 * numbers only grow per channel (docs/protocol.md section 4): the check and the insert run in one
 * transaction, with the channel row locked on PostgreSQL so two servers cannot interleave them.
 */
import type { Kysely, Selectable } from 'kysely';
import { FerryError, type Digest, type ReleaseInfo, type ReleaseStatement } from '@ferry/core';
import { TtlCache } from './cache.js';
import type { ChangeFeed } from './changes.js';
import type { Engine } from './db.js';
import type { Database, ReleasesTable } from './schema.js';

/** A release with its signed envelope. */
export interface StoredRelease extends ReleaseInfo {
  /** The release envelope bytes, as the release engineer signed them. */
  envelope: Buffer;
  published: number;
}

/** A channel as the operator sees it. */
export interface ChannelView {
  name: string;
  release: StoredRelease | undefined;
}

/** A release as the API shows it (without its envelope). */
export function releaseInfo(r: StoredRelease): ReleaseInfo {
  return { channel: r.channel, release: r.release, ref: r.ref, manifest: r.manifest, config: r.config, expires: r.expires, created: r.created, urgent: r.urgent };
}

function toRelease(r: Selectable<ReleasesTable>): StoredRelease {
  return {
    channel: r.channel,
    release: r.release,
    ref: r.ref,
    manifest: r.manifest as Digest,
    config: r.config as Digest,
    expires: r.expires,
    created: r.created,
    urgent: r.urgent === 1,
    envelope: Buffer.from(r.envelope, 'base64'),
    published: r.published,
  };
}

/** Releases and channels in the state database. */
export class ReleaseState {
  /** Each channel's latest release (asked by every check-in), dropped when the channel changes. */
  private readonly latestCache: TtlCache<string, StoredRelease | undefined>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly engine: Engine,
    private readonly now: () => number,
    private readonly changes: ChangeFeed,
    ttlMs: number,
  ) {
    this.latestCache = new TtlCache({ ttlMs, maxWeight: 10_000, now });
    changes.on((c) => {
      if (c.kind === 'channel') this.latestCache.delete(c.key);
      else if (c.kind === 'resync') this.latestCache.clear();
    });
  }

  /** Adds a verified release; a number not above the channel's last is FERRY_ERR_BUNDLE_ROLLBACK. */
  async add(s: ReleaseStatement, envelope: Uint8Array, urgent: boolean): Promise<StoredRelease> {
    const published = this.now();
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('channels').values({ name: s.channel, release: 0, updated: published }).onConflict((oc) => oc.column('name').doNothing()).execute();
      const channel = await trx
        .selectFrom('channels')
        .select('release')
        .where('name', '=', s.channel)
        .$if(this.engine === 'postgres', (q) => q.forUpdate())
        .executeTakeFirstOrThrow();
      if (s.release <= channel.release) {
        throw new FerryError('FERRY_ERR_BUNDLE_ROLLBACK', `channel ${s.channel} is at release ${channel.release}; release ${s.release} is not higher`, { details: { last: channel.release, offered: s.release } });
      }
      await trx
        .insertInto('releases')
        .values({ channel: s.channel, release: s.release, ref: s.ref, manifest: s.manifest, config: s.config, expires: s.expires, created: s.created, urgent: urgent ? 1 : 0, envelope: Buffer.from(envelope).toString('base64'), published })
        .execute();
      await trx.updateTable('channels').set({ release: s.release, updated: published }).where('name', '=', s.channel).execute();
    });
    this.changes.emit({ kind: 'channel', key: s.channel });
    return { ...s, urgent, envelope: Buffer.from(envelope), published };
  }

  /** The latest release of a channel, or undefined. */
  latest(channel: string): Promise<StoredRelease | undefined> {
    return this.latestCache.through(channel, () => this.readLatest(channel));
  }

  private async readLatest(channel: string): Promise<StoredRelease | undefined> {
    const row = await this.db
      .selectFrom('channels')
      .innerJoin('releases', (j) => j.onRef('releases.channel', '=', 'channels.name').onRef('releases.release', '=', 'channels.release'))
      .selectAll('releases')
      .where('channels.name', '=', channel)
      .executeTakeFirst();
    return row ? toRelease(row) : undefined;
  }

  /** One release. */
  async get(channel: string, release: number): Promise<StoredRelease | undefined> {
    const row = await this.db.selectFrom('releases').selectAll().where('channel', '=', channel).where('release', '=', release).executeTakeFirst();
    return row ? toRelease(row) : undefined;
  }

  /** Every release, newest first. */
  async list(): Promise<StoredRelease[]> {
    return (await this.db.selectFrom('releases').selectAll().orderBy('published', 'desc').orderBy('release', 'desc').execute()).map(toRelease);
  }

  /** Every channel with its latest release. */
  async channels(): Promise<ChannelView[]> {
    const names = await this.db.selectFrom('channels').select('name').orderBy('name').execute();
    return Promise.all(names.map(async ({ name }) => ({ name, release: await this.latest(name) })));
  }
}
