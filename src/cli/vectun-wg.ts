#!/usr/bin/env node
/**
 * Entry point of the `vectun-wg` binary (package.json `bin`): `vectun wg`
 * with wireguard-go's command line (wireguard-go.ts).
 * @module
 */
import { runEntry } from './entry.js';
import { runWireguardGoCli } from './wireguard-go.js';

runEntry('vectun-wg', (argv, io) => runWireguardGoCli(argv, io));
