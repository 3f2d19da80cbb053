// The device (tds) and media (trt) operations the simulator answers, as response bodies.
// Shapes follow what real Profile S cameras send and what the three clients we prove against
// read (agsh `onvif`, `node-onvif`, libonvif's `onvif-util`); anything else is the fault a
// camera gives for an optional action it lacks.
import type { ResolvedOptions } from './options.ts';
import { NS, faults, type SoapFault } from './soap.ts';
import { escapeXml as x, textAt, type XmlElement } from './xml.ts';

/** Operations a camera answers before authentication (ONVIF core, access class PRE_AUTH). */
export const PRE_AUTH = new Set(['GetSystemDateAndTime', 'GetCapabilities', 'GetServices', 'GetServiceCapabilities', 'GetHostname', 'GetWsdlUrl', 'GetEndpointReference']);

export const DEVICE_PATH = '/onvif/device_service';
export const MEDIA_PATH = '/onvif/media_service';
export const SNAPSHOT_PATH = '/onvif/snapshot';

export interface ServiceContext {
  o: ResolvedOptions;
  /** Host (IPv4) to write into URLs, and the HTTP port. */
  host: string;
  port: number;
  /** The camera's clock in ms (wall clock plus its offset). */
  cameraNowMs: number;
}

interface Profile {
  token: string;
  name: string;
  width: number;
  height: number;
  fps: number;
  kbps: number;
  gov: number;
}

const PROFILES: Profile[] = [
  { token: 'Profile_1', name: 'mainStream', width: 1920, height: 1080, fps: 25, kbps: 4096, gov: 50 },
  { token: 'Profile_2', name: 'subStream', width: 640, height: 360, fps: 15, kbps: 512, gov: 30 },
];

export function profilesOf(o: ResolvedOptions): Profile[] {
  return PROFILES.slice(0, o.profiles);
}

export function baseUrl(c: ServiceContext): string {
  return `http://${c.host}:${c.port}`;
}

export function streamUri(c: ServiceContext, profile: Profile): string {
  const main = c.o.rtspUrl ?? `rtsp://${c.host}:554/Streaming/Channels/101`;
  return profile.token === 'Profile_1' ? main : (c.o.subRtspUrl ?? main);
}

export function snapshotUri(c: ServiceContext, profile: Profile): string {
  return `${baseUrl(c)}${SNAPSHOT_PATH}?profile=${profile.token}`;
}

// --- device service ------------------------------------------------------------------------

function dateTime(ms: number): string {
  const d = new Date(ms);
  return (
    `<tt:Time><tt:Hour>${d.getUTCHours()}</tt:Hour><tt:Minute>${d.getUTCMinutes()}</tt:Minute><tt:Second>${d.getUTCSeconds()}</tt:Second></tt:Time>` +
    `<tt:Date><tt:Year>${d.getUTCFullYear()}</tt:Year><tt:Month>${d.getUTCMonth() + 1}</tt:Month><tt:Day>${d.getUTCDate()}</tt:Day></tt:Date>`
  );
}

function capabilities(c: ServiceContext, category: string): string {
  const base = baseUrl(c);
  const device =
    `<tt:Device><tt:XAddr>${base}${DEVICE_PATH}</tt:XAddr>` +
    `<tt:Network><tt:IPFilter>false</tt:IPFilter><tt:ZeroConfiguration>false</tt:ZeroConfiguration><tt:IPVersion6>false</tt:IPVersion6><tt:DynDNS>false</tt:DynDNS></tt:Network>` +
    `<tt:System><tt:DiscoveryResolve>false</tt:DiscoveryResolve><tt:DiscoveryBye>true</tt:DiscoveryBye><tt:RemoteDiscovery>false</tt:RemoteDiscovery><tt:SystemBackup>false</tt:SystemBackup><tt:SystemLogging>false</tt:SystemLogging><tt:FirmwareUpgrade>false</tt:FirmwareUpgrade>` +
    `<tt:SupportedVersions><tt:Major>2</tt:Major><tt:Minor>40</tt:Minor></tt:SupportedVersions></tt:System>` +
    `<tt:Security><tt:TLS1.1>false</tt:TLS1.1><tt:TLS1.2>false</tt:TLS1.2><tt:OnboardKeyGeneration>false</tt:OnboardKeyGeneration><tt:AccessPolicyConfig>false</tt:AccessPolicyConfig><tt:X.509Token>false</tt:X.509Token><tt:SAMLToken>false</tt:SAMLToken><tt:KerberosToken>false</tt:KerberosToken><tt:RELToken>false</tt:RELToken></tt:Security>` +
    `</tt:Device>`;
  const media =
    `<tt:Media><tt:XAddr>${base}${MEDIA_PATH}</tt:XAddr>` +
    `<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>`;
  const parts = category === 'Device' ? device : category === 'Media' ? media : device + media;
  return `<tds:GetCapabilitiesResponse><tds:Capabilities>${parts}</tds:Capabilities></tds:GetCapabilitiesResponse>`;
}

function services(c: ServiceContext, includeCapability: boolean): string {
  const base = baseUrl(c);
  const svc = (ns: string, path: string, caps: string): string =>
    `<tds:Service><tds:Namespace>${ns}</tds:Namespace><tds:XAddr>${base}${path}</tds:XAddr>` +
    (includeCapability ? `<tds:Capabilities>${caps}</tds:Capabilities>` : '') +
    `<tds:Version><tt:Major>2</tt:Major><tt:Minor>40</tt:Minor></tds:Version></tds:Service>`;
  return (
    `<tds:GetServicesResponse>` +
    svc(NS.tds, DEVICE_PATH, `<tds:Capabilities><tds:Network ZeroConfiguration="false" IPVersion6="false"/><tds:Security UsernameToken="true" HttpDigest="false"/><tds:System DiscoveryBye="true"/></tds:Capabilities>`) +
    svc(NS.trt, MEDIA_PATH, mediaServiceCaps(c.o)) +
    `</tds:GetServicesResponse>`
  );
}

function mediaServiceCaps(o: ResolvedOptions): string {
  return (
    `<trt:Capabilities SnapshotUri="${o.snapshot !== 'none'}" Rotation="false" VideoSourceMode="false" OSD="false">` +
    `<trt:ProfileCapabilities MaximumNumberOfProfiles="${o.profiles}"/>` +
    `<trt:StreamingCapabilities RTPMulticast="false" RTP_TCP="true" RTP_RTSP_TCP="true" NonAggregateControl="false"/></trt:Capabilities>`
  );
}

/** The device's WS-Discovery scopes: name and hardware (model) as URL-encoded path segments. */
export function scopesOf(o: ResolvedOptions): string[] {
  return [
    'onvif://www.onvif.org/type/video_encoder',
    'onvif://www.onvif.org/Profile/Streaming',
    `onvif://www.onvif.org/name/${encodeURIComponent(o.name)}`,
    `onvif://www.onvif.org/hardware/${encodeURIComponent(o.model)}`,
    `onvif://www.onvif.org/location/${encodeURIComponent(o.location)}`,
  ];
}

function networkInterfaces(c: ServiceContext): string {
  return (
    `<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="eth0"><tt:Enabled>true</tt:Enabled>` +
    `<tt:Info><tt:Name>eth0</tt:Name><tt:HwAddress>${c.o.mac}</tt:HwAddress><tt:MTU>1500</tt:MTU></tt:Info>` +
    `<tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config><tt:Manual><tt:Address>${c.host}</tt:Address><tt:PrefixLength>24</tt:PrefixLength></tt:Manual><tt:DHCP>false</tt:DHCP></tt:Config></tt:IPv4>` +
    `</tds:NetworkInterfaces></tds:GetNetworkInterfacesResponse>`
  );
}

/** Answers a device-service operation, or the fault a camera gives for it. */
export function deviceOp(c: ServiceContext, op: XmlElement): string | SoapFault {
  if (op.ns !== NS.tds) return faults.actionNotSupported();
  const o = c.o;
  switch (op.local) {
    case 'GetSystemDateAndTime':
      return (
        `<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>` +
        `<tt:TimeZone><tt:TZ>GMT0</tt:TZ></tt:TimeZone><tt:UTCDateTime>${dateTime(c.cameraNowMs)}</tt:UTCDateTime><tt:LocalDateTime>${dateTime(c.cameraNowMs)}</tt:LocalDateTime>` +
        `</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`
      );
    case 'GetDeviceInformation':
      return (
        `<tds:GetDeviceInformationResponse><tds:Manufacturer>${x(o.manufacturer)}</tds:Manufacturer><tds:Model>${x(o.model)}</tds:Model>` +
        `<tds:FirmwareVersion>${x(o.firmware)}</tds:FirmwareVersion><tds:SerialNumber>${x(o.serial)}</tds:SerialNumber><tds:HardwareId>${x(o.hardwareId)}</tds:HardwareId></tds:GetDeviceInformationResponse>`
      );
    case 'GetCapabilities':
      return capabilities(c, textAt(op, 'Category') ?? 'All');
    case 'GetServices':
      return services(c, textAt(op, 'IncludeCapability') === 'true');
    case 'GetScopes':
      return `<tds:GetScopesResponse>${scopesOf(o).map((s) => `<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>${x(s)}</tt:ScopeItem></tds:Scopes>`).join('')}</tds:GetScopesResponse>`;
    case 'GetNetworkInterfaces':
      return networkInterfaces(c);
    case 'GetHostname':
      return `<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false</tt:FromDHCP><tt:Name>${x(o.hostname)}</tt:Name></tds:HostnameInformation></tds:GetHostnameResponse>`;
    case 'GetNetworkDefaultGateway': {
      const gw = c.host.replace(/\.\d+$/, '.1');
      return `<tds:GetNetworkDefaultGatewayResponse><tds:NetworkGateway><tt:IPv4Address>${gw}</tt:IPv4Address></tds:NetworkGateway></tds:GetNetworkDefaultGatewayResponse>`;
    }
    case 'GetDNS':
      return `<tds:GetDNSResponse><tds:DNSInformation><tt:FromDHCP>false</tt:FromDHCP><tt:DNSManual><tt:Type>IPv4</tt:Type><tt:IPv4Address>${c.host.replace(/\.\d+$/, '.1')}</tt:IPv4Address></tt:DNSManual></tds:DNSInformation></tds:GetDNSResponse>`;
    case 'GetNTP':
      return `<tds:GetNTPResponse><tds:NTPInformation><tt:FromDHCP>false</tt:FromDHCP></tds:NTPInformation></tds:GetNTPResponse>`;
    case 'GetServiceCapabilities':
      return `<tds:GetServiceCapabilitiesResponse><tds:Capabilities><tds:Network ZeroConfiguration="false"/><tds:Security UsernameToken="true" HttpDigest="false"/><tds:System DiscoveryBye="true"/></tds:Capabilities></tds:GetServiceCapabilitiesResponse>`;
    default:
      return faults.actionNotSupported();
  }
}

// --- media service -------------------------------------------------------------------------

function profileXml(p: Profile, element: string): string {
  return (
    `<${element} token="${p.token}" fixed="true"><tt:Name>${p.name}</tt:Name>` +
    `<tt:VideoSourceConfiguration token="VideoSourceConfig_1"><tt:Name>VideoSourceConfig_1</tt:Name><tt:UseCount>${PROFILES.length}</tt:UseCount><tt:SourceToken>VideoSource_1</tt:SourceToken><tt:Bounds x="0" y="0" width="1920" height="1080"/></tt:VideoSourceConfiguration>` +
    `<tt:VideoEncoderConfiguration token="VideoEncoderConfig_${p.token.slice(-1)}"><tt:Name>VideoEncoder_${p.token.slice(-1)}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>` +
    `<tt:Resolution><tt:Width>${p.width}</tt:Width><tt:Height>${p.height}</tt:Height></tt:Resolution><tt:Quality>4</tt:Quality>` +
    `<tt:RateControl><tt:FrameRateLimit>${p.fps}</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>${p.kbps}</tt:BitrateLimit></tt:RateControl>` +
    `<tt:H264><tt:GovLength>${p.gov}</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264>` +
    `<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast>` +
    `<tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration></${element}>`
  );
}

function mediaUri(uri: string, element: string): string {
  return `<${element}><trt:MediaUri><tt:Uri>${x(uri)}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></${element}>`;
}

/** Answers a media-service operation. */
export function mediaOp(c: ServiceContext, op: XmlElement): string | SoapFault {
  if (op.ns !== NS.trt) return faults.actionNotSupported();
  const profiles = profilesOf(c.o);
  const byToken = (): Profile | undefined => {
    const token = textAt(op, 'ProfileToken');
    return profiles.find((p) => p.token === token);
  };
  switch (op.local) {
    case 'GetProfiles':
      return `<trt:GetProfilesResponse>${profiles.map((p) => profileXml(p, 'trt:Profiles')).join('')}</trt:GetProfilesResponse>`;
    case 'GetProfile': {
      const p = byToken();
      return p ? `<trt:GetProfileResponse>${profileXml(p, 'trt:Profile')}</trt:GetProfileResponse>` : faults.noProfile();
    }
    case 'GetVideoSources':
      return (
        `<trt:GetVideoSourcesResponse><trt:VideoSources token="VideoSource_1"><tt:Framerate>25</tt:Framerate>` +
        `<tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution></trt:VideoSources></trt:GetVideoSourcesResponse>`
      );
    case 'GetStreamUri': {
      const p = byToken();
      return p ? mediaUri(streamUri(c, p), 'trt:GetStreamUriResponse') : faults.noProfile();
    }
    case 'GetSnapshotUri': {
      if (c.o.snapshot === 'none') return faults.actionNotSupported();
      const p = byToken();
      return p ? mediaUri(snapshotUri(c, p), 'trt:GetSnapshotUriResponse') : faults.noProfile();
    }
    case 'GetServiceCapabilities':
      return `<trt:GetServiceCapabilitiesResponse>${mediaServiceCaps(c.o)}</trt:GetServiceCapabilitiesResponse>`;
    default:
      return faults.actionNotSupported();
  }
}
