#!/usr/bin/env node
// Runs the TypeScript CLI directly: Node.js 22.18+ strips types natively.
import { runCli } from '../src/cli.ts';

process.exitCode = await runCli(process.argv.slice(2));
