// The authorization suite on the shared standalone Redis (127.0.0.1:6379).
import { authorizationSuite } from './authorization-suite.js';

authorizationSuite('standalone Redis', () => ({}));
