#!/usr/bin/env node
// One binary: swipe-authorizer serve | persist | hydrate | reconcile | migrate | dev
console.error('not yet wired');
process.exit(2);
