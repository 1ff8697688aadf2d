/** The Rates feature's door: the published rate table, its event, and the routes that publish and read it. */
export * from './events.ts';
export { rateTableAfter, rateTableView, parseRateTable, publishedTable, rateTypes } from './rate-table.ts';
export { rateRoutes, type RateRoutesOptions } from './routes.ts';
export { publishedRates, ratesProjection, readPublishedRates, type PublishedRates } from './read-model.ts';
export { rateQueryRoutes, type RateQueryRoutesOptions } from './query-routes.ts';
