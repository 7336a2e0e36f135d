// Recent operations (everyone their own; admins all).
import { get } from './transport.js';
import { API_VERSIONS, type List, type Operation } from './types.js';

export const listOperations = async (sub: string) =>
  (await get<List<Operation>>(`/subscriptions/${sub}/providers/Labforge.Core/operations?$top=50`, API_VERSIONS.labforge)).value;
