// Installs the packed pkg/ into a fresh temporary project and prints its path (used by
// scripts/test.sh so every test file imports the same installed package).
import { installedProject } from '../tests/js/helpers.mjs';
console.log(installedProject());
