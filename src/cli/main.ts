#!/usr/bin/env node
/**
 * Entry point of the `vectun` binary (package.json `bin`); signals, broken
 * pipes and the exit code as every entry point handles them (entry.ts).
 * @module
 */
import { runEntry } from './entry.js';
import { runCli } from './program.js';

runEntry('vectun', (argv, io) => runCli(argv, io));
