import { FerryError } from '../errors.js';

/** An OCI platform. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
}

const NODE_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The platform this process runs on, in OCI terms. */
export function hostPlatform(): Platform {
  return { os: process.platform === 'darwin' ? 'linux' : process.platform, architecture: NODE_ARCH[process.arch] ?? process.arch };
}

/** Parses `os/arch[/variant]` (as docker's --platform). */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new FerryError('FERRY_ERR_USAGE', `platform must be os/arch[/variant], got ${JSON.stringify(s)}`);
  }
  return { os: parts[0]!, architecture: parts[1]!, variant: parts[2] };
}

/** Formats a platform as `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** True when an index entry's platform satisfies the wanted one (arm64 treats v8 as its default variant). */
export function platformMatches(have: Platform, want: Platform): boolean {
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (!want.variant) return true;
  const norm = (v: string | undefined): string | undefined => (have.architecture === 'arm64' && v === undefined ? 'v8' : v);
  return norm(have.variant) === norm(want.variant);
}
