/**
 * Registers the remote backends' store URL schemes with openStore (src/objstore/url.ts):
 *   swift+http://HOST:PORT/auth/v1.0[?container=NAME]   swift+https://...
 *   s3+http://HOST:PORT/BUCKET[?region=R&weak-conditional-create=1]   s3+https://...
 * Importing this module (index.ts does) is all it takes. Credentials come from the URL's user
 * info or the environment (SILT_SWIFT_USER/SILT_SWIFT_KEY; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
 * AWS_REGION). Both backends create their container / bucket when opened, so `create` is moot.
 */
import { registerStoreScheme, type OpenStoreOptions } from './url.ts';
import { SwiftStore } from './swift.ts';
import { S3Store } from './s3.ts';

const swiftUsage = 'swift+http(s)://HOST:PORT/auth/v1.0[?container=NAME] (OpenStack Swift, v1 auth; SILT_SWIFT_USER, SILT_SWIFT_KEY)';
const s3Usage = 's3+http(s)://HOST:PORT/BUCKET[?region=R] (S3, path style; AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)';

/** The client limits a caller set (connections, timeouts, retries); the URL's own options stay. */
function clientOptions(o: OpenStoreOptions): Pick<OpenStoreOptions, 'connections' | 'timeouts' | 'retry'> {
  return {
    ...(o.connections !== undefined && { connections: o.connections }),
    ...(o.timeouts !== undefined && { timeouts: o.timeouts }),
    ...(o.retry !== undefined && { retry: o.retry }),
  };
}

const openSwift = (url: string, o: OpenStoreOptions): Promise<SwiftStore> => SwiftStore.fromUrl(url, clientOptions(o));
const openS3 = (url: string, o: OpenStoreOptions): Promise<S3Store> => S3Store.fromUrl(url, clientOptions(o));

registerStoreScheme('swift+http:', openSwift, swiftUsage);
registerStoreScheme('swift+https:', openSwift, swiftUsage);
registerStoreScheme('s3+http:', openS3, s3Usage);
registerStoreScheme('s3+https:', openS3, s3Usage);
