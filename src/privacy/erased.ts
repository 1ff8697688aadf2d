/** What a personal field reads as once its subject's key is destroyed (GDPR erasure), wherever it is shown. */
export const erasedText = '[erased]';
