// `node --import ./register.mjs run.mjs <script>`: maps k6 built-in modules
// (k6, k6/http, k6/crypto, k6/metrics, k6/execution) to the stubs in this
// folder, so a k6 script can be loaded and driven by Node against a fake api.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
