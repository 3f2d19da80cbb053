import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { dhash } from '@vigil/protocol';
import { DHASH_FILTER } from '../capture/ffmpeg-capture.js';

const run = promisify(execFile);
export const DHASH_FILE_TIMEOUT_MS = 30_000;

/**
 * dHash of a JPEG already on disk, with the same ffmpeg filter as a capture. Only used when a
 * capture's own hash is gone (a spool file found at start-up without its queue row). ffmpeg
 * rather than an image library keeps the agent free of a second native dependency.
 */
export async function dhashOfJpeg(path: string, ffmpegPath = 'ffmpeg'): Promise<string> {
  const { stdout } = await run(
    ffmpegPath,
    ['-hide_banner', '-loglevel', 'error', '-nostdin', '-i', path, '-vf', DHASH_FILTER, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', '-'],
    { encoding: 'buffer', timeout: DHASH_FILE_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 1 << 20 },
  );
  return dhash(new Uint8Array(stdout));
}
