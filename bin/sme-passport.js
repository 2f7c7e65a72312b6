#!/usr/bin/env node
// Runs the TypeScript CLI directly: Node.js 22.18+ strips types natively.
import { main } from '../src/cli.ts';

process.exitCode = await main(process.argv.slice(2));
