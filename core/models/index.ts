export {
  canonicalJson, FILE_NAME_PATTERN, MANIFEST_FILE, MANIFEST_FORMAT, ManifestError, MODEL_FILES, parseManifest, REQUIRED_FILES,
  VERSION_PATTERN, versionName,
} from './manifest.ts';
export type { BagInputSpec, FeatureSpec, Manifest, ManifestFile, NetworkInputSpec } from './manifest.ts';
export {
  contentVersion, float32Bytes, float32FromBytes, readManifest, readModelDir, sha256Hex, writeFileAtomic, writeModelDir,
} from './model-dir.ts';
export type { ModelDir, ModelDirContents, ReadModelDirOptions } from './model-dir.ts';
export {
  CURRENT_FILE, decidePromotion, DEFAULT_LOCK_WAIT_MS, openRegistry, PROMOTIONS_LOG, RegistryBusyError, VERSIONS_DIR,
} from './registry.ts';
export type {
  CurrentPointer, ModelRegistry, PromotionCriterion, PromotionDecision, RegistryOptions, StageSource,
} from './registry.ts';
