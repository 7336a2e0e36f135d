// The fake compute driver lives in src/compute/fake/ (selected with
// LABFORGE_COMPUTE_DRIVER=fake); tests import its one shared instance from here.
export { FakeComputeDriver, fakeDriver } from '../../src/compute/fake/fake.driver.js';
