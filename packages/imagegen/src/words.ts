/**
 * The vocabulary that text bodies, identifiers and names are made of. A fixed list picked with a
 * Zipf-like bias gives text that compresses about as well as real documentation and source code.
 */
import type { Rng } from './rng.js';

/** Common English and technical words, most frequent first (duplicates dropped). */
export const WORDS: readonly string[] = [
  ...new Set(
    (
  'the of and to in is for that with on as by be this are or it from at an not which if all can ' +
  'will has may must should when file data value system user default use used using set get new ' +
  'other any each one two more than only also such into its been have was were their there these ' +
  'these then where while would could after before between under over about without within ' +
  'configuration package library module function option options server client request response ' +
  'error warning message buffer stream string number object array list table index entry record ' +
  'path directory name type size length offset count limit version release update install remove ' +
  'build source target binary image layer network socket address port host service process thread ' +
  'memory cache queue timer signal event handler callback context state status result return ' +
  'input output read write open close create delete copy move link mode owner group access ' +
  'permission security license copyright software distribution free public general terms conditions ' +
  'warranty merchantability fitness particular purpose provided holders contributors notice ' +
  'redistribution binary forms modification permitted following disclaimer documentation materials ' +
  'support program language compiler linker symbol section header format encoding decoding ' +
  'compression archive checksum digest signature certificate key token session cookie protocol ' +
  'transport channel frame packet payload chunk block page segment region range window interval ' +
  'retry timeout delay backoff jitter rate bandwidth latency throughput capacity quota policy ' +
  'device driver kernel module firmware hardware platform architecture machine processor core ' +
  'locale language country region zone time date calendar clock second minute hour day week month ' +
  'year text line column character word sentence paragraph document manual reference guide example ' +
  'test check verify validate parse serialize encode decode convert transform filter sort merge ' +
  'split join append insert replace match search find scan load store save restore backup mirror ' +
  'sync async await promise future task job worker pool scheduler executor runtime environment ' +
  'variable constant parameter argument flag switch command shell script terminal console log ' +
  'debug trace info notice error critical alert emergency level verbose quiet silent enable disable ' +
  'start stop restart reload status health ready live probe metric counter gauge histogram summary ' +
  'label annotation tag selector namespace cluster node pod container volume mount secret account ' +
  'role binding rule route gateway proxy balancer upstream downstream backend frontend endpoint ' +
  'schema field property attribute element node tree graph edge vertex path cycle order level depth ' +
  'width height color font style theme layout view widget button panel dialog menu item icon ' +
  'cursor pointer keyboard mouse screen display window frame render paint draw canvas pixel'
    ).split(' '),
  ),
];

/** Short technical identifier parts for code (camelCase and snake_case names). */
export const IDENTS: readonly string[] = (
  'get set is has make new init open close read write parse load save find add remove update ' +
  'create delete handle process resolve reject emit on off push pop shift map reduce filter ' +
  'config opts ctx req res err buf len idx key val item node list tree path name data info ' +
  'size count total offset start end next prev first last min max sum hash id uid type mode ' +
  'state status result value cache pool queue stream chunk block frame header body token user'
).split(' ');

/** Syllables for generated package and binary names. */
const SYLLABLES: readonly string[] = (
  'ab ac al am an ar as at ba be bi bo bu ca ce ci co cu da de di do du el en er es et ' +
  'fa fe fi fo ga ge gi go ha he hi ho ka ke ki ko la le li lo lu ma me mi mo mu na ne ni no nu ' +
  'pa pe pi po ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo xa xe xi za ze zi zo'
).split(' ');

/** A word picked with a Zipf-like bias. */
export function word(rng: Rng): string {
  return rng.skewed(WORDS, 2.2);
}

/** A camelCase identifier of one to three parts. */
export function identifier(rng: Rng): string {
  let s = rng.skewed(IDENTS, 1.6);
  const parts = rng.int(0, 2);
  for (let i = 0; i < parts; i++) {
    const p = rng.skewed(IDENTS, 1.6);
    s += p.charAt(0).toUpperCase() + p.slice(1);
  }
  return s;
}

/** A pronounceable lowercase name of `syllables` syllables (package and binary names). */
export function coinName(rng: Rng, syllables = 3): string {
  let s = '';
  for (let i = 0; i < syllables; i++) s += rng.pick(SYLLABLES);
  return s;
}

/** One sentence: capitalised, 5 to 17 words, ending with a full stop. */
export function sentence(rng: Rng): string {
  const n = rng.int(5, 17);
  let s = word(rng);
  s = s.charAt(0).toUpperCase() + s.slice(1);
  for (let i = 1; i < n; i++) s += (rng.chance(0.08) ? ', ' : ' ') + word(rng);
  return `${s}.`;
}

/** Mints unique names: asks `make` until it returns one not yet taken, then suffixes digits. */
export class NamePool {
  private readonly taken = new Set<string>();

  /** A name from `make` that this pool has not returned before. */
  unique(rng: Rng, make: (rng: Rng) => string): string {
    for (let i = 0; i < 8; i++) {
      const name = make(rng);
      if (!this.taken.has(name)) {
        this.taken.add(name);
        return name;
      }
    }
    let n = 2;
    const stem = make(rng);
    while (this.taken.has(`${stem}${n}`)) n++;
    this.taken.add(`${stem}${n}`);
    return `${stem}${n}`;
  }

  /** Marks `name` as used. */
  reserve(name: string): void {
    this.taken.add(name);
  }
}
