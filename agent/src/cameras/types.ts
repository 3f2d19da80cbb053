// A camera as the agent knows it, wherever it came from: ONVIF discovery or the config file.
// The key is stable across IP changes (MAC, else serial); it names the camera in uploads,
// spool folders and the cloud.

export interface CameraError {
  code: string;
  message: string;
  /** Epoch ms. */
  at: number;
}

export interface CameraRecord {
  key: string;
  source: 'onvif' | 'config';
  name: string;
  manufacturer: string | null;
  model: string | null;
  firmware: string | null;
  serial: string | null;
  /** Lower-case, colon-separated. */
  mac: string | null;
  /** Host (and port, if not 80) of the ONVIF device service it was last seen at. */
  address: string | null;
  /** ONVIF device service URL. */
  xaddr: string | null;
  /** Stream and snapshot URIs as the camera reports them, without credentials. */
  streamUri: string | null;
  snapshotUri: string | null;
  /** Found by the latest discoveries (or configured). */
  present: boolean;
  /** Epoch ms. */
  firstSeenAt: number;
  lastSeenAt: number;
  lastError: CameraError | null;
}

/** What changed about a camera, as discovery reports it. */
export type CameraChange = 'found' | 'address_changed' | 'updated' | 'lost' | 'returned';

export interface CameraCredentials {
  username: string;
  password: string;
}
