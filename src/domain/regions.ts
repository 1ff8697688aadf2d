/** The twenty Italian regions, as the dashboard groups them. */
export const italianRegions = [
  'Abruzzo',
  'Basilicata',
  'Calabria',
  'Campania',
  'Emilia-Romagna',
  'Friuli-Venezia Giulia',
  'Lazio',
  'Liguria',
  'Lombardia',
  'Marche',
  'Molise',
  'Piemonte',
  'Puglia',
  'Sardegna',
  'Sicilia',
  'Toscana',
  'Trentino-Alto Adige',
  'Umbria',
  "Valle d'Aosta",
  'Veneto',
] as const;

export type Region = (typeof italianRegions)[number];

const byKey = new Map<string, Region>(italianRegions.map((region) => [regionKey(region), region]));

function regionKey(name: string): string {
  return name
    .toLowerCase()
    .normalize('NFD')
    .replace(/[^a-z]/g, '');
}

/** The canonical name of a region written with any case, spacing or dashes; undefined if none. */
export function canonicalRegion(name: string): Region | undefined {
  return byKey.get(regionKey(name));
}
